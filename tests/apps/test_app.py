"""The Gradio app: builds with every tab, the Analyze tab works on a real photo, errors become gr.Error;
tabs send their result on to each other; first model loads report progress; served-process settings."""
import os

import gradio as gr
import pytest


def test_app_builds_with_all_tabs():
    import app

    demo = app.build_app()
    labels = {b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)}
    assert {"Analyze", "Mask-to-face", "Pose", "De-occlusion", "Invert & edit"} <= labels


def test_analyze_tab(celebamask):
    from apps.analyze import analyze

    annotated, crop, rows = analyze(celebamask(5)[0], 0)
    assert annotated.shape == (256, 256, 3) and crop.shape == (256, 256, 3) and len(rows) == 1


def test_analyze_tab_errors_are_user_messages(tmp_path):
    from apps.analyze import analyze

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(gr.Error, match="Not an image"):
        analyze(str(bad), 0)
    with pytest.raises(gr.Error, match="Upload a photo"):
        analyze(None, 0)


def test_pending_tabs_say_so_plainly():
    from apps.common import model_status

    ready, note = model_status(["no-such-model"], "Pose", "pose editing")
    assert not ready and "not available yet" in note and "no-such-model" in note


# ---- one photo flows between tabs (apps.common.TabLinks) ----

def _tab(demo: gr.Blocks, label: str) -> gr.Tab:
    return next(b for b in demo.blocks.values() if isinstance(b, gr.Tab) and b.label == label)


def _inside(block, ancestor) -> bool:
    while block is not None:
        if block is ancestor:
            return True
        block = block.parent
    return False


def _in_tab(demo: gr.Blocks, label: str, kind: type, text: str | None = None) -> list:
    """Components of type `kind` in tab `label` (buttons: with this text)."""
    tab = _tab(demo, label)
    return [b for b in demo.blocks.values() if isinstance(b, kind) and _inside(b, tab)
            and (text is None or b.value == text)]


def _send_rows_in(block) -> list:
    from apps.common import _send_rows

    return [r for r in _send_rows(block) if r.visible]


def _click_fn(demo: gr.Blocks, button: gr.Button):
    """The event a button's click runs (its fn, inputs, outputs)."""
    [fn] = [f for f in demo.fns.values() if (button._id, "click") in [tuple(t) for t in f.targets]]
    return fn


def test_tabs_have_ids_and_send_rows():
    import app
    import hub
    from apps.common import tab_id
    from core.pipelines import gan as GAN

    demo = app.build_app()
    assert _tab(demo, "Analyze").id == "analyze" and _tab(demo, "Invert & edit").id == "invert-edit"
    untrained = [label for label, models in (("Invert & edit", [GAN.GENERATOR, GAN.ENCODER]),
                                             ("Pose", ["pose-sampler", "pose-inpainter"]))
                 if not all(hub.available(m) for m in models)]
    pending_ids = {tab_id(c) for c in untrained}
    for capability in untrained:  # a tab without its model: no photo input, no result, no row
        assert not _send_rows_in(_tab(demo, capability)), capability
    for label in ("Analyze", "Parse", "VAE"):
        rows = _send_rows_in(_tab(demo, label))
        if label != "Analyze" and not rows:
            continue  # its model is not bundled here
        [row] = rows
        target = row.facelab_send[0]
        ids = [value for _, value in target.choices]
        assert ids and target.value == ids[0] and tab_id(label) not in ids and not pending_ids & set(ids), ids
    assert _in_tab(demo, "Analyze", gr.Button, "Send aligned crop"), "Analyze sends its aligned crop"


def test_send_result_sets_target_photo_and_switches_tab():
    """Sending the Analyze crop (numpy) to Parse: Parse's photo gets it, losslessly, and the Parse tab opens."""
    import numpy as np
    from PIL import Image

    import app
    from apps.common import PhotoInput

    demo = app.build_app()
    if not _in_tab(demo, "Parse", PhotoInput):
        pytest.skip("the parser model is not bundled here")
    [parse_photo] = _in_tab(demo, "Parse", PhotoInput)
    [button] = _in_tab(demo, "Analyze", gr.Button, "Send aligned crop")
    fn = _click_fn(demo, button)
    result, target = fn.inputs
    assert result.label == "Aligned crop (256 px)" and target.label == "Send to tab"
    assert parse_photo in fn.outputs
    crop = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    out = fn.fn(crop, "parse")
    [tab_bar] = [o for o in fn.outputs if isinstance(o, gr.Tabs)]
    assert set(out) == {parse_photo, tab_bar}, "only the target's photo changes"
    assert out[tab_bar].selected == "parse"
    # what the browser receives: a PNG in Gradio's cache, pixel for pixel the crop
    data = parse_photo.postprocess(out[parse_photo])
    assert data.path.endswith(".png")
    assert np.array_equal(np.asarray(Image.open(data.path).convert("RGB")), crop)
    # and what Parse's function then gets from it: a file path
    assert isinstance(parse_photo.preprocess(data), str)


def test_send_photo_passes_the_path_and_errors_are_user_messages(tmp_path):
    import app

    demo = app.build_app()
    [button] = _in_tab(demo, "Analyze", gr.Button, "Send photo")
    fn = _click_fn(demo, button)
    photo = tmp_path / "p.png"
    photo.write_bytes(b"x")
    target = fn.inputs[1].choices[-1][1]
    assert str(photo) in fn.fn(str(photo), target).values()
    with pytest.raises(gr.Error, match="Nothing to send"):
        fn.fn(None, target)
    with pytest.raises(gr.Error, match="Choose the tab"):
        fn.fn(str(photo), "no-such-tab")  # not a tab that takes a photo


def test_tab_links_are_generic():
    """Any tab returning (photo, result), either None, is linked; send_row() places the row; one-tab apps hide it."""
    from apps.common import TabLinks, image_output, photo_input, send_row

    links = TabLinks()
    with gr.Blocks() as demo:
        with gr.Tabs() as tab_bar:
            with gr.Tab("Both", id="both"):
                both = links.add("both", "Both", (photo_input(), image_output("Generated face")))
            with gr.Tab("Photo only", id="photo-only"):
                photo_only = links.add("photo-only", "Photo only", (photo_input(), None))
            with gr.Tab("Result only", id="result-only"):
                send_row()  # placed by the tab itself, above what follows
                gr.Markdown("below")
                result_only = links.add("result-only", "Result only", (None, image_output("Sample")))
            with gr.Tab("Nothing", id="nothing"):
                nothing = links.add("nothing", "Nothing", None)
        links.wire(tab_bar)
    assert both.send_result.value == "Send generated face" and both.send_photo.value == "Send photo"
    assert [v for _, v in both.target.choices] == ["photo-only"]
    assert photo_only.send_result is None and [v for _, v in photo_only.target.choices] == ["both"]
    assert result_only.send_photo is None and [v for _, v in result_only.target.choices] == ["both", "photo-only"]
    assert result_only.row.parent.children.index(result_only.row) == 0, "the row stays where send_row() put it"
    assert nothing.row is None
    assert len([f for f in demo.fns.values() if f.api_visibility == "private"]) == 4
    with pytest.raises(ValueError, match="two tabs"):
        links.add("both", "Both", None)


def test_standalone_tab_hides_its_send_row():
    from apps import vae
    from apps.common import _send_rows

    demo = vae.demo()
    assert all(not row.visible for row in _send_rows(demo))


def test_every_control_has_a_label():
    """Screen readers name each control: every input/output component has a label (buttons: their text)."""
    import app

    demo = app.build_app()
    unnamed = [type(b).__name__ for b in demo.blocks.values()
               if isinstance(b, gr.components.Component) and not isinstance(b, (gr.State, gr.Markdown, gr.HTML))
               and not (b.value if isinstance(b, gr.Button) else b.label)]
    assert not unnamed, unnamed


def test_first_model_load_reports_progress(monkeypatch):
    from apps import common

    loaded, calls = set(), []
    monkeypatch.setattr(common, "is_loaded", lambda name: name in loaded)
    progress = lambda *args, **kwargs: calls.append((args, kwargs))  # noqa: E731  (a gr.Progress stand-in)
    common.load_models(progress, {"parser": lambda: loaded.add("parser")})
    assert loaded == {"parser"} and "Loading the parser model" in calls[0][1]["desc"]
    calls.clear()
    common.load_models(progress, {"parser": lambda: pytest.fail("loaded twice")})
    assert not calls, "a loaded model costs nothing and says nothing"


def test_is_loaded_reads_the_hub_cache():
    import hub
    from apps.common import is_loaded
    from core.loading import load_model

    if not hub.available("parser"):
        pytest.skip("no parser model")
    load_model("parser")
    assert is_loaded("parser") and not is_loaded("no-such-model")


def test_malloc_arena_cap(monkeypatch):
    import platform

    from apps.common import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert not limit_malloc_arenas(), "an explicit MALLOC_ARENA_MAX is left alone"
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_malloc_arenas() == (platform.libc_ver()[0] == "glibc")


def test_result_pngs_are_written_once(tmp_path):
    """The same result again keeps its cached file (Gradio rewrote it in place, cutting short a download of the
    earlier identical result); the name is the one Gradio gives it, the PNG is lossless."""
    import numpy as np
    from gradio.processing_utils import save_img_array_to_cache
    from PIL import Image

    from apps.common import cached_png, image_output

    image = np.random.default_rng(1).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    path = cached_png(image, str(tmp_path))
    stat = os.stat(path)
    assert cached_png(image, str(tmp_path)) == path and os.stat(path).st_ino == stat.st_ino
    assert path == save_img_array_to_cache(image, str(tmp_path / "gradio"), format="png").replace(
        str(tmp_path / "gradio"), str(tmp_path))
    assert np.array_equal(np.asarray(Image.open(path)), image)
    assert cached_png("a/path.png", str(tmp_path)) == "a/path.png" and cached_png(None, str(tmp_path)) is None
    assert [f for f in os.listdir(os.path.dirname(path)) if f.startswith(".")] == [], "no staging file left"
    shown = image_output("Result").postprocess(image)
    assert np.array_equal(np.asarray(Image.open(shown.path)), image)
