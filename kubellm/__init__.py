"""kubellm: fine-tune, load-test and serve LLMs on Kubernetes."""
