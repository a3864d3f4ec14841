"""A real browser on the served app: Debian's chromium, headless, driven by Playwright for Python.

Never downloads a browser: it uses /usr/bin/chromium (`.ci/run` installs Debian's package) and is
skipped with the reason when that or Playwright is absent. For each working tab it uploads a photo,
clicks the tab's button, waits for the result image and saves a full-page screenshot as a test
artefact: into `$FACELAB_ARTIFACTS` when set (else pytest's tmp_path), with a copy in
`.cache/screens/` of the checkout. It also sends a Parse result on to another tab (the "Send to tab"
row), and checks the layout on a phone-sized screen (390 x 844): every tab reachable, nothing wider
than the screen, every control named for screen readers.

Not covered yet: the mask-editor stroke of issue 9 belongs to the Mask-to-face tab, whose interface has
not landed in app.py yet; the pending tabs only state that they are not available.
"""
from __future__ import annotations

import os
import re
import shutil

import pytest
from PIL import Image

from tests.served_app import ROOT, shared_server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RESULT_TIMEOUT_MS = 240_000  # first model load + inference on a loaded 2-core CPU
SCREENS = os.path.join(ROOT, ".cache", "screens")

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not found (install Debian's chromium: apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                               "(pip install -r requirements-dev.txt)")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> str:
    folder = os.environ.get("FACELAB_ARTIFACTS") or str(tmp_path_factory.mktemp("screens"))
    os.makedirs(folder, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def photo(astronaut, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("browser_photos") / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return str(path)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    server = shared_server()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url, wait_until="domcontentloaded", timeout=120_000)
    page.get_by_role("tab", name="Analyze").wait_for(timeout=120_000)
    page.js_errors = errors
    yield page
    context.close()


def open_tab(page, name: str):
    page.get_by_role("tab", name=name, exact=True).click()
    panel = page.get_by_role("tabpanel").filter(visible=True)
    panel.first.wait_for(timeout=30_000)
    return panel.first


def block(panel, label: str):
    """The component whose label reads exactly `label`."""
    # `has=` takes a locator relative to each candidate, so it is built from the page, not the panel
    title = panel.page.locator("label[data-testid=block-label]",
                               has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return panel.locator("div.block").filter(has=title).last


def upload(panel, path: str, label: str = "Photo"):
    """Upload into the image input `label` and wait for its preview."""
    widget = block(panel, label)
    widget.locator("input[data-testid=file-upload]").set_input_files(path)
    widget.locator("img").first.wait_for(state="visible", timeout=60_000)


def wait_image(panel, label: str) -> tuple[int, int]:
    """Wait until the output `label` shows a loaded image; its natural (width, height)."""
    img = block(panel, label).locator("img").first
    img.wait_for(state="visible", timeout=RESULT_TIMEOUT_MS)
    img.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle(),
                               timeout=60_000)
    return img.evaluate("img => [img.naturalWidth, img.naturalHeight]")


def shoot(page, artifacts: str, name: str) -> str:
    path = os.path.join(artifacts, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    try:
        os.makedirs(SCREENS, exist_ok=True)
        shutil.copy(path, os.path.join(SCREENS, f"{name}.png"))
    except OSError:
        pass  # a read-only checkout: the artefact folder still has it
    return path


def test_analyze_tab(page, photo, artifacts):
    panel = open_tab(page, "Analyze")
    upload(panel, photo)
    panel.get_by_role("button", name="Analyze", exact=True).click()
    assert wait_image(panel, "Detected faces") == [512, 512]
    assert wait_image(panel, "Aligned crop (256 px)") == [256, 256]
    panel.get_by_text("hog", exact=True).filter(visible=True).first.wait_for(timeout=30_000)  # the table of faces: one row, the detector
    shoot(page, artifacts, "analyze")
    assert not page.js_errors, page.js_errors


def test_parse_tab(page, photo, artifacts):
    panel = open_tab(page, "Parse")
    upload(panel, photo)
    panel.get_by_role("button", name="Parse", exact=True).click()
    assert wait_image(panel, "Parsed face") == [512, 512]
    shoot(page, artifacts, "parse")
    panel.locator("a[data-testid=download-link][download='labels.png']").wait_for(timeout=60_000)  # label PNG
    panel.get_by_label("Label colours").wait_for(timeout=10_000)
    assert not page.js_errors, page.js_errors


def test_vae_tab(page, photo, artifacts):
    panel = open_tab(page, "VAE")
    upload(panel, photo)
    panel.get_by_role("button", name="Reconstruct", exact=True).click()
    assert wait_image(panel, "Reconstruction pasted into the photo (masked VAE if available)") == [512, 512]
    w, h = wait_image(panel, "Aligned input")
    assert w == h >= 64
    panel.get_by_role("button", name="Sample", exact=True).click()
    w, h = wait_image(panel, "Sample")
    assert w == h >= 64
    shoot(page, artifacts, "vae")
    assert not page.js_errors, page.js_errors


def test_pending_tab_says_not_available(page, artifacts):
    """A tab whose model is not trained yet says so (the first such tab: models land one by one)."""
    from apps.common import model_status
    from apps.pending import PENDING

    untrained = [c for c, (models, what) in PENDING.items() if not model_status(models, c, what)[0]]
    if not untrained:
        pytest.skip("every pending capability has its model now")
    panel = open_tab(page, untrained[0])
    panel.get_by_text("is not available yet").filter(visible=True).first.wait_for(timeout=30_000)
    shoot(page, artifacts, f"{untrained[0].lower().replace(' ', '_')}_pending")


def test_bad_upload_shows_an_error_and_page_recovers(page, photo, artifacts, tmp_path):
    bad = tmp_path / "not_a_photo.png"
    bad.write_bytes(b"this is not an image" * 10)
    panel = open_tab(page, "Analyze")
    block(panel, "Photo").locator("input[data-testid=file-upload]").set_input_files(str(bad))
    # The browser itself cannot preview it; either the upload is refused in the page or the server says so.
    panel.get_by_role("button", name="Analyze", exact=True).click()
    page.wait_for_timeout(3000)
    shoot(page, artifacts, "analyze_bad_upload")
    assert shared_server().alive()
    upload(panel, photo)
    panel.get_by_role("button", name="Analyze", exact=True).click()
    assert wait_image(panel, "Detected faces") == [512, 512]


def test_send_parse_result_to_another_tab(page, photo, artifacts):
    """Parse, then "Send parsed face" to the last tab in the list: it opens, its photo input shows the overlay."""
    panel = open_tab(page, "Parse")
    upload(panel, photo)
    panel.get_by_role("button", name="Parse", exact=True).click()
    assert wait_image(panel, "Parsed face") == [512, 512]
    parsed_src = block(panel, "Parsed face").locator("img").first.get_attribute("src")
    panel.get_by_role("combobox", name="Send to tab").click()
    option = page.get_by_role("option").last
    target = option.inner_text().strip()
    assert target and target != "Parse"
    option.click()
    panel.get_by_role("button", name="Send parsed face", exact=True).click()
    page.get_by_role("tab", name=target, exact=True, selected=True).wait_for(timeout=30_000)
    other = page.get_by_role("tabpanel").filter(visible=True).first
    assert wait_image(other, "Photo") == [512, 512]
    sent_src = block(other, "Photo").locator("img").first.get_attribute("src")
    # the same pixels as the parse result (not the original photo): both are lossless PNGs of one array
    assert decode(page, sent_src) == decode(page, parsed_src)
    assert decode(page, sent_src) != Image.open(photo).convert("RGB").tobytes()
    shoot(page, artifacts, f"sent_parse_to_{target.lower()}")
    assert not page.js_errors, page.js_errors


def decode(page, src: str) -> bytes:
    """The RGB pixels of an image URL the page shows."""
    import io

    body = page.request.get(src).body()
    return Image.open(io.BytesIO(body)).convert("RGB").tobytes()


UNNAMED = re.compile(r'^\s*- (button|combobox|textbox|spinbutton|slider|radio|checkbox|tab)\b(?! ")')


def test_phone_layout(browser, artifacts):
    """390 x 844 (a phone): every tab is visible (none in an overflow menu), no page is wider than the screen,
    and every control has an accessible name (except Gradio's example thumbnails, an img with alt="")."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(shared_server().url, wait_until="domcontentloaded", timeout=120_000)
    page.get_by_role("tab", name="Analyze").wait_for(timeout=120_000)
    tabs = page.get_by_role("tab").all()
    names = [t.inner_text().strip() for t in tabs]
    assert len(tabs) >= 7 and all(t.is_visible() for t in tabs), names
    for name in names:
        panel = open_tab(page, name)
        page.wait_for_timeout(500)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name}: the page is {width} px wide on a 390 px screen"
        thumbnails = panel.locator(".gallery button").count()
        unnamed = [line for line in panel.aria_snapshot().splitlines() if UNNAMED.match(line)]
        assert len(unnamed) <= thumbnails, (name, unnamed)
        send = panel.get_by_role("combobox", name="Send to tab")
        if send.count():
            box = send.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)
        if name in ("Analyze", "Parse", "VAE", "Pose"):
            shoot(page, artifacts, f"phone_{name.lower()}")
    context.close()
    assert not errors, errors
