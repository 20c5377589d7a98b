"""Monitoring stage: a frozen reference in the bundle, drift (PSI), label-free performance
estimates, realized figures once labels mature, alert rules with statistical guards, webhook.

Nothing here is imported by the package itself (CLI start-up unchanged).
"""
