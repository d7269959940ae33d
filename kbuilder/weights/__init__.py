"""Weights trained elsewhere, loaded into a model built from a spec.

The flow: read a source file into named arrays (`SourceTensors`, without running anything it
holds), match them to the spec's layers into a `LoadPlan` (one `LayerLoad` per weighted layer:
loaded from which source tensors, converted to Keras's layout, or left new), report the plan as
a table, and set the arrays on the built model. Keras sources (run directories, `.keras`,
`.weights.h5`, legacy HDF5) match by layer name; PyTorch `state_dict`s (`.pt`, `.pth`,
`.safetensors`) by the order of weighted layers, with their layouts converted.
"""
