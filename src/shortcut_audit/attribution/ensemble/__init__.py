"""attribution/ensemble"""
