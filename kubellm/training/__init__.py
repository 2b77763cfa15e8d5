"""kubellm.training"""
