"""Building Med-GRIT-style training data from segmentation datasets (``build-data``).

- `sources` / `volumes`: one small adapter per kind of source (SA-Med2D, BiomedParse-style
  mask folders, NIfTI image + label map, DICOM series + DICOM SEG);
- `boxes`: connected-component boxes of masks;
- `conversations`: the four tasks' questions and answers;
- `build`: the pipeline; `units`: the pieces of work its worker processes do; `journal`: the
  hidden folder a build writes and resumes in; `compose`: split, conversations and files,
  streamed from the journal; `shards`: joining ``--shard`` builds; `card`: the data card;
  `layouts`: what each kind of source expects, for refusals.
"""
