"""FaceLab's command line (`python -m cli --help`): reads photos, calls `core`, writes the results.

Beside `apps/` (the Gradio tabs): both are thin rooms over `core`, which never writes files.
"""
from cli.main import main

__all__ = ["main"]
