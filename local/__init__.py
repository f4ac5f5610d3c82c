"""The embedded local stack: Kaltura simulator, moto-backed AWS, local runner and demo. Never shipped to Lambda."""
