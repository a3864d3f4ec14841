"""Domain errors. Every user-facing failure of `core` is a `FaceLabError` with a
message a person can act on; the app turns these into `gr.Error` in one place."""


class FaceLabError(Exception):
    """Base class: the message is shown to the user as is."""


class InvalidImage(FaceLabError):
    """Not an image, truncated, too small, too large or an unsupported mode."""


class NoFace(FaceLabError):
    """No face was detected."""


class FaceIndexError(FaceLabError):
    """A face index was asked for that does not exist."""


class ModelUnavailable(FaceLabError):
    """A model is not trained/bundled yet or could not be resolved."""
