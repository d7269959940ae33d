"""Keras models turned into kbuilder specs (`kbuilder import`): layers mapped to kinds, repeats folded into blocks."""
