"""The project's one exception tree."""


class ClippingsError(Exception):
    """Base of every error the project raises on purpose."""


class DatasetError(ClippingsError):
    """A dataset folder is missing or holds bad records."""


class ModelError(ClippingsError):
    """A model cannot be found, loaded, or fails verification."""


class ExportError(ModelError):
    """ONNX export failed or its output does not match PyTorch."""


class ConfigError(ClippingsError):
    """Settings are invalid."""
