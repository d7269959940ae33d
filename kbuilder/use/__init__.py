"""Using what was trained: loading a run's, ensemble's, export's or study's model with its
input contract (source.py), reading users' images and arrays as the data source delivered
them (inputs.py), and predicting (predict.py). Between training and the experiments/API."""
