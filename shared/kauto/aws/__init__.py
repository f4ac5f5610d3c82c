"""AWS adapters: the only modules that import boto3. Each raises :mod:`kauto.errors` types ``from`` the boto error."""
