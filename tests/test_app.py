"""The Gradio app: builds with every tab, the Analyze tab works on a real photo, errors become gr.Error."""
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
