"""Weights trained elsewhere, loaded into a model built from a spec.

The flow: read a source file into named arrays (`SourceTensors`, without running anything it
holds), match them to the spec's layers into a `LoadPlan` (one `LayerLoad` per weighted layer:
loaded from which source tensors, converted to Keras's layout, or left new), report the plan as
a table, and set the arrays on the built model. Keras sources (run directories, `.keras`,
`.weights.h5`, legacy HDF5) match by layer name; PyTorch `state_dict`s (`.pt`, `.pth`,
`.safetensors`) by the order of weighted layers, with their layouts converted.

The modules, in the order of the flow: sources.py (a path -> SourceTensors: run and export
directories, `.keras`, HDF5; READERS maps a file suffix to its reader), h5_layouts.py (Keras 3's
and the legacy HDF5 layouts, read as untrusted), targets.py (the spec's weighted layers as the
model holds them), globs.py (map/include/exclude globs), match.py (MATCHERS maps a source's
layout to its matcher; Keras sources by name, map or order), load.py (read, match, set; missing.py: a source not made yet, refused at `weights.from`),
table.py (the plan for people and `--json`). PyTorch support plugs in through
`sources.register_reader` and `match.register_matcher("torch", ...)`; until it does, PyTorch
files are refused with a message saying so.
"""
