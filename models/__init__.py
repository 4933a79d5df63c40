"""Fraud model code shared by online scoring and offline training: features, training,
evaluation and the model registry. (The foundation has only the placeholder score in
``streams.scoring``; the model lifecycle fills this package.)"""
