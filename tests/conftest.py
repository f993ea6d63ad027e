"""What every test process holds before any test runs."""

from sensorhook.core.flavors import Flavor
from sensorhook.providers.registry import adapter

# The embedded stack (local/runtime/lambda_runner.py) takes the functions' packages out of
# sys.modules while it runs, so its functions start cold. A test's own code that first needed a
# provider's adapter while a stack ran would import the stack's copy, and the registry would keep
# it (`adapter` is cached): readings of another `Reading` class, unequal to equal readings, in
# every later test of the process. Every adapter is imported here, once, as the test process's.
for flavor in Flavor:
    adapter(flavor)
