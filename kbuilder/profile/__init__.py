"""What a model costs when it runs (`kbuilder profile`): time per layer, memory per batch size, throughput.

options.py (what is asked, checked before Keras loads) -> run.py (`profile(built, options)`):
layers.py times each layer on its real input and the whole step (calls.py: the compiled calls
and interleaved timing rounds), memory.py estimates a training step's memory from the model and
the spec's optimizer, throughput.py measures samples per second against the batch size (and
plots it); render.py prints the result. The peak they are compared with is
kbuilder.train.peak's, which every training run uses too.
"""
