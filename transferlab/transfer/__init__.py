"""Transfer by feature extraction: classifier grids and heads on cached deep features."""
