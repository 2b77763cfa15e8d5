"""``kubellm train``: pre-train or fine-tune a causal LM, track it in MLflow, register it.

The training Job's container runs this; the operator reads its termination message.
Modules, one job each: ``options`` (flags and their ``KUBELLM_*`` environment fallbacks),
``presets`` (architectures to pre-train), ``data`` (dataset sources, split, packing),
``tokenizer`` (BPE for pre-training), ``trainer`` (model loading and transformers'
Trainer), ``tracking`` (the MLflow run, logged model, version and alias), ``progress``
(log lines), ``job`` (the order of steps and failure handling), ``cli`` (exit codes and
the summary).
"""
