"""Validate stage: data gates over the training table (see :mod:`leadscore.validate.run`)."""
