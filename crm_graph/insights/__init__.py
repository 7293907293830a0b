"""Customer insights: who will buy again and what a customer is worth (BG/NBD and Gamma-Gamma
customer lifetime value), from the orders, as stored runs. See docs/insights.md."""
