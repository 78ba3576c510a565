"""The HTML in headless Chromium: loads cleanly, draws something, sorts tables."""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--window-size=1280,900",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not shutil.which("chromedriver") or not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("chromium and chromium-driver are not installed; `make system-deps` installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def test_loads_without_console_errors_and_is_not_blank(browser, stage_outputs, tmp_path):
    from PIL import Image, ImageStat

    browser.get((stage_outputs / "audit.html").as_uri())
    assert browser.title == "Shortcut audit: reliance on spurious features"
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot))
    image = Image.open(shot).convert("RGB")
    assert len(set(image.resize((160, 110)).getdata())) > 30
    assert max(ImageStat.Stat(image.convert("L")).stddev) > 20


def test_hostile_script_does_not_run(browser, stage_outputs):
    from selenium.common.exceptions import NoAlertPresentException

    browser.get((stage_outputs / "audit.html").as_uri())
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text


def test_clicking_a_header_sorts_the_table(browser, stage_outputs):
    from selenium.webdriver.common.by import By

    browser.get((stage_outputs / "audit.html").as_uri())
    table = browser.find_element(By.ID, "table-models")
    headers = table.find_elements(By.CSS_SELECTOR, "thead th")
    column = next(i for i, h in enumerate(headers) if h.text.strip().startswith("unbiased"))

    def values():
        return [
            float(td.get_attribute("data-sort"))
            for td in table.find_elements(By.CSS_SELECTOR, f"tbody td:nth-child({column + 1})")
        ]

    button = headers[column].find_element(By.TAG_NAME, "button")
    button.click()
    assert values() == sorted(values()) and headers[column].get_attribute("aria-sort") == "ascending"
    button.click()
    assert values() == sorted(values(), reverse=True)
