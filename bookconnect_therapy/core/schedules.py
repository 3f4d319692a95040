"""Schedules written as comma-separated numbers ("24,1" hours, "3,7,14" days)."""


def parse_positive_ints(text):
    """Parse "24, 1" into ``[24, 1]`` (largest first, no duplicates); ``[]`` for empty text.

    :raise ValueError: on anything but comma-separated positive whole numbers.
    """
    text = (text or "").strip()
    if not text:
        return []
    values = set()
    for part in text.split(","):
        value = int(part.strip())
        if value <= 0:
            raise ValueError(f"{value} is not a positive whole number")
        values.add(value)
    return sorted(values, reverse=True)
