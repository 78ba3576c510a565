"""Data sources: MNIST (:mod:`.mnist`), Biased-MNIST factor tables and the renderer
(:mod:`.biased_mnist`), and image sets for the ImageNet audit (:mod:`.image_sets`)."""
