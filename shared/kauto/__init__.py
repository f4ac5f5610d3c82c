"""Kaltura automations on AWS: the domain and adapters shared by every Lambda function (shipped as a layer)."""
