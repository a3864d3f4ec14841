"""A real browser on the served app: Debian's chromium, headless, driven by Playwright for Python.

Never downloads a browser: it uses /usr/bin/chromium (`.ci/run` installs Debian's package) and is
skipped with the reason when that or Playwright is absent. For each working tab it uploads a photo,
clicks the tab's button, waits for the result image and saves a full-page screenshot as a test
artefact: into `$FACELAB_ARTIFACTS` when set (else pytest's tmp_path), with a copy in
`.cache/screens/` of the checkout. It also sends a Parse result on to another tab (the "Send to tab"
row), and checks the layout on a phone-sized screen (390 x 844): every tab reachable, nothing wider
than the screen, every control named for screen readers.

Mask-to-face (the mask-editor stroke of issue 9): load the example mask, pick the Brush, drag a stroke
across the gr.ImageEditor canvas with the mouse (down, moves, up), Generate face; the generated face
is a 256 px image, and the label PNG of the mask used carries the stroke (so the painted pixels, not
just the loaded mask, reached the server). Invert & edit: invert, then a slider moves the edited face.
"""
from __future__ import annotations

import io
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.served_app import ROOT, shared_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

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
    panel.get_by_text("learned", exact=True).filter(visible=True).first.wait_for(timeout=30_000)  # the table of faces: one row, the detector
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


POSE_YAW = "Target yaw, degrees (> 0 = turned to the image's right)"  # apps/pose.py: the yaw slider's label


def test_pose_tab(page, photo, artifacts):
    """Upload: the note shows the face's own pose (the sliders start there); yaw set to +20 in the slider's number
    box, Turn the face: the whole photo comes back at its size, the 128 px edited crop, and the measured line."""
    import hub

    if not all(hub.available(m) for m in ("pose-sampler", "pose-inpainter")):
        pytest.skip("the pose models are not bundled (test_pending_tab_says_not_available covers the tab)")
    panel = open_tab(page, "Pose")
    upload(panel, photo)
    # the upload sets the sliders to the face's own pose: wait for it, or it would overwrite the yaw typed below
    panel.get_by_text(re.compile(r"This face: yaw")).filter(visible=True).first.wait_for(timeout=RESULT_TIMEOUT_MS)
    yaw = panel.get_by_label(f"number input for {POSE_YAW}", exact=True)
    yaw.fill("20")
    yaw.press("Enter")
    panel.get_by_role("button", name="Turn the face", exact=True).click()
    assert wait_image(panel, "Result (the whole photo, PNG)") == [512, 512]
    assert wait_image(panel, "Edited face, aligned crop (128 px)") == [128, 128]
    panel.get_by_text(re.compile(r"Target yaw \+20\.0°")).filter(visible=True).first.wait_for(timeout=60_000)
    panel.get_by_text(re.compile(r"Measured on the output")).filter(visible=True).first.wait_for(timeout=10_000)
    result = fetch(page, block(panel, "Result (the whole photo, PNG)").locator("img").first.get_attribute("src"))
    original = np.asarray(Image.open(photo).convert("RGB"))
    assert result.shape == original.shape and not np.array_equal(result, original), "the face was turned"
    shoot(page, artifacts, "pose")
    assert not page.js_errors, page.js_errors


def test_invert_tab_and_a_slider(page, photo, artifacts):
    """Invert the astronaut (the default 50 refinement steps): crop, reconstruction, the pasted photo, quality line;
    then the yaw slider to +3 (its number box): the edited face appears and differs from the reconstruction."""
    import hub

    if not all(hub.available(m) for m in ("stylegan", "mtv-encoder", "directions")):
        pytest.skip("the GAN models are not bundled (apps/invert says so; tests/core/pipelines/test_gan_pipeline covers that)")
    panel = open_tab(page, "Invert & edit")
    upload(panel, photo)
    panel.get_by_role("button", name="Invert", exact=True).click()
    assert wait_image(panel, "Reconstruction") == [128, 128]
    assert wait_image(panel, "Edit pasted into the photo") == [512, 512]
    panel.get_by_text(re.compile(r"PSNR")).filter(visible=True).first.wait_for(timeout=60_000)
    assert wait_image(panel, "Edited face") == [128, 128]
    recon = fetch(page, block(panel, "Reconstruction").locator("img").first.get_attribute("src"))
    yaw = panel.get_by_label("number input for yaw", exact=True)
    yaw.fill("3")
    yaw.press("Enter")
    img = block(panel, "Edited face").locator("img").first
    page.wait_for_function("([img, src]) => img.src !== src && img.complete && img.naturalWidth > 0",
                           arg=[img.element_handle(), img.get_attribute("src")], timeout=RESULT_TIMEOUT_MS)
    edited = fetch(page, img.get_attribute("src"))
    assert edited.shape == recon.shape and np.abs(edited.astype(int) - recon).mean() > 3, "yaw +3 turned the face"
    shoot(page, artifacts, "invert")
    assert not page.js_errors, page.js_errors


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


MASK_SIZE = 256  # the Mask editor's canvas (apps/mask2face.py: canvas_size) and the example mask's side


def pixels(locator) -> np.ndarray:
    """What the element shows on screen, as an RGB array (a screenshot of it: the editor is a WebGL canvas)."""
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"))


def fetch(page, url: str) -> np.ndarray:
    """An image the page links to (a result, a download), as the server sends it."""
    return np.asarray(Image.open(io.BytesIO(page.request.get(url).body())))


def mask_on_canvas(shot: np.ndarray, min_side: int = 100) -> tuple[int, int, float] | None:
    """Where the editor shows a mask of MASK_SIZE px: (left, top, screen px per mask px), or None yet.

    The mask is drawn in the palette; its box is the rows and columns mostly made of palette colours (the
    toolbar's few palette-coloured icon pixels do not make a row or a column)."""
    from core.labels import PALETTE

    dist = np.abs(shot[:, :, None, :].astype(np.int16) - PALETTE.astype(np.int16)).max(-1).min(-1)
    palette = dist <= 2
    cols = np.nonzero(palette.sum(0) >= min_side)[0]
    rows = np.nonzero(palette.sum(1) >= min_side)[0]
    if len(cols) < min_side or len(rows) < min_side:
        return None
    width, height = cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1
    if abs(width - height) > 3:  # still drawing (or zooming): not a square yet
        return None
    return int(cols[0]), int(rows[0]), width / MASK_SIZE


def test_mask2face_tab_brush_stroke(page, artifacts):
    """Load the example mask, Brush, drag across the hair at the top of the head (a skin-coloured stroke, the
    brush's default colour), Generate face: a 256 px face comes back and the mask used has skin where the stroke
    went."""
    from core.labels import ID, PALETTE

    panel = open_tab(page, "Mask-to-face")
    editor = block(panel, "Mask (paint with the class colours)")
    canvas = editor.locator("div.pixi-target canvas")
    canvas.wait_for(state="visible", timeout=60_000)
    panel.get_by_role("button", name="Load the example mask", exact=True).click()
    # the example photo is parsed on the server (the first time, the parser loads): wait until the mask shows
    # and holds still (two equal looks in a row)
    deadline, where, shot = RESULT_TIMEOUT_MS / 1000, None, None
    for _ in range(int(deadline / 0.5)):
        previous, shot = shot, pixels(canvas)
        where = mask_on_canvas(shot)
        if where and previous is not None and np.array_equal(previous, shot):
            break
        page.wait_for_timeout(500)
    assert where, "the example mask did not show in the editor"
    left, top, scale = where
    box = canvas.bounding_box()

    def on_screen(x: float, y: float) -> tuple[float, float]:  # mask px -> page px
        return box["x"] + left + (x + 0.5) * scale, box["y"] + top + (y + 0.5) * scale

    def on_shot(x: float, y: float) -> tuple[int, int]:        # mask px -> (row, col) in a canvas screenshot
        return int(top + (y + 0.5) * scale), int(left + (x + 0.5) * scale)

    skin = PALETTE[ID["skin"]]
    y, xs = 40, range(60, 200, 10)    # across the top of the head, clear of the editor's toolbars
    before = np.array([shot[on_shot(x, y)] for x in xs])
    assert (np.abs(before.astype(int) - skin).max(-1) > 2).mean() > 0.8, "the stroke should paint over non-skin"

    editor.get_by_role("button", name="Brush", exact=True).click()
    page.mouse.move(*on_screen(xs[0] - 10, y))
    page.mouse.down()
    page.mouse.move(*on_screen(xs[-1] + 10, y), steps=30)
    page.mouse.up()
    for _ in range(20):  # the stroke shows on the canvas
        after = pixels(canvas)
        if all(np.abs(after[on_shot(x, y)].astype(int) - skin).max() <= 2 for x in xs):
            break
        page.wait_for_timeout(250)
    else:
        pytest.fail(f"the stroke did not show: {[tuple(after[on_shot(x, y)]) for x in xs]}")

    panel.get_by_role("button", name="Generate face", exact=True).click()
    assert wait_image(panel, "Generated face") == [MASK_SIZE, MASK_SIZE]
    face = fetch(page, block(panel, "Generated face").locator("img").first.get_attribute("src"))
    assert face.shape == (MASK_SIZE, MASK_SIZE, 3) and face.std() > 20, "a face, not an empty image"
    link = panel.locator("a[data-testid=download-link][download='mask.png']")
    link.wait_for(timeout=60_000)
    used = fetch(page, link.get_attribute("href"))
    assert used.shape == (MASK_SIZE, MASK_SIZE)
    assert all(used[y, x] == ID["skin"] for x in xs), [int(used[y, x]) for x in xs]
    assert (used == ID["hair"]).sum() > 1000 and (used == ID["nose"]).sum() > 100, "the example mask is under it"
    assert wait_image(panel, "Mask used (colours)") == [MASK_SIZE, MASK_SIZE]
    shoot(page, artifacts, "mask2face_stroke")
    assert not page.js_errors, page.js_errors
