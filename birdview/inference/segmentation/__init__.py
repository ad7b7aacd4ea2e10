"""Box- and text-prompted segmentation in the model worker, beside the language models.

One module per engine (`sam`, `sam2`, `sam2_video`, `sam3`), each wrapping a transformers
model and its processor, and `voxtell` (text → 3D) around the voxtell package's own predictor;
`engines` is the data-only registry that recognises a checkpoint by its ``config.model_type``
or, for VoxTell's nnU-Net folder, by its files (no torch, so the viewer may list engines).
`loader.load_segmenter` opens a local checkpoint folder offline, `propagate` carries a mask
through a volume's slices, `protocol` holds the messages (no torch) and `serve` answers them in
the worker.

Importing this package imports no torch; only the engine modules and `loader` do.
"""
