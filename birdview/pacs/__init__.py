"""Talking to a PACS: find, retrieve and send back over DIMSE (pynetdicom) and DICOMweb.

Qt-free, so the command line, the tests and the viewer's browser share one implementation.
"""
