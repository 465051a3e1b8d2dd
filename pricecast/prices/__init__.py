"""Reading and validating price files; the price store and its incoming folder."""
