"""kubellm.operator"""
