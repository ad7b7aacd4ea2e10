"""BirdView: a DICOM/NIfTI viewer with a local refer-and-ground model, and its trainer."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
