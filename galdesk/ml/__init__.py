"""galdesk.ml"""
