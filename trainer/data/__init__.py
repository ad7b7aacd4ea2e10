"""Building Med-GRIT-style training data from segmentation datasets (``build-data``).

- `sources` / `volumes`: one small adapter per kind of source (SA-Med2D, BiomedParse-style
  mask folders, NIfTI image + label map, DICOM series + DICOM SEG);
- `boxes`: connected-component boxes of masks;
- `conversations`: the four tasks' questions and answers;
- `build`: the pipeline, split and files; `card`: the data card.
"""
