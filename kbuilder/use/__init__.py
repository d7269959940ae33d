"""Using what was trained: loading a run's, ensemble's, export's or study's model with its
input contract (source.py), reading users' images and arrays as the data source delivered
them (inputs.py), predicting (predict.py), evaluating a run (evaluate.py), looking inside its
model (inspect.py) and writing its report page (report_html.py).

Above kbuilder.train (it reads run directories and applies the training preprocessing) and
below kbuilder.experiments: an ensemble's averaged model is built there and handed in.
"""
