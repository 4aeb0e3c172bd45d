"""The run loop: prompts, providers, the simulated panel and the exchange with agents."""
