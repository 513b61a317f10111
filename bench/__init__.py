"""Launch-rate benchmark: the stock AwsEcsExecutor against ours, on an emulated Fargate (moto)."""
