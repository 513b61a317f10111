"""The cost model: the monthly cost of a deployment from its synthesized templates (``model``),
priced with dated price tables (``prices/<region>.json``, loaded by ``prices``); ``cli`` is
``make cost``."""
