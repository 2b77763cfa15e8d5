"""kubellm.serving"""
