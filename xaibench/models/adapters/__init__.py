"""Adapters that bring outside models into the suite: any torch module, Hugging Face classifiers, sklearn."""
