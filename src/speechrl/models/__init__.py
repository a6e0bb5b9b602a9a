"""Speech-aware LMs: tokenizer, processor (features + prompt layout) and model building/loading."""
