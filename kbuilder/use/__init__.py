"""Using what was trained: evaluate a run, look inside its model, and write its report page.

Above kbuilder.train (it reads run directories and applies the training preprocessing) and
below kbuilder.experiments: an ensemble's averaged model is built there and handed in.
"""
