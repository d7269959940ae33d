"""What a model costs when it runs (`kbuilder profile`): time per layer, memory per batch size, throughput."""
