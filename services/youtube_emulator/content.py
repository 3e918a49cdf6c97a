"""Realistic raw text for generated videos: titles and descriptions that mention the query.

Raw text deliberately contains ``'``, ``&`` and ``"`` so consumers meet search.list's HTML
escaping (``&#39;``, ``&amp;``, ``&quot;``) exactly as on YouTube.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CHANNEL_NAMES = (
    "Sports & Highlights Daily",
    "The Pavilion End",
    "Kavya's Corner",
    "Daily Dose Network",
    "Crease & Crowd",
    "Backyard Broadcasts",
    "Morning Show Live",
    "TrendWatch",
    "Mehta Reacts",
    "The Replay Room",
    'Fanzone "Unfiltered"',
    "Studio 9 Sports",
    "Boundary Line TV",
    "Arjun's Analysis",
    "Global Game Hub",
    "Top Edge Media",
    "Weekend Warriors",
    "Field & Focus",
    "Nightly Recap",
    "Priya Explains",
)

_TITLES = (
    "{Q} Highlights | Top Moments of the Day",
    "Top 10 {Q} Moments You Won't Believe",
    "{Q} & More: Weekly Roundup #{n}",
    'Why "{Q}" Is Trending Right Now',
    "{Q} Explained in {n} Minutes",
    "The {Q} Debate: Experts Don't Agree",
    "I Tried {Q} for {n} Days - Here's What Happened",
    "{Q} News Today | {month} {day} Update",
    "Beginner's Guide to {Q} ({year})",
    "{Q} Fails & Wins Compilation Vol. {n}",
    "Reacting to the Best {Q} Clips of the Week",
    "{Q}: Full Analysis & Player Ratings",
    '"{Q}" - What Nobody Tells You',
    "{Q} Tips & Tricks the Pros Use",
    "Big {Q} Announcement Today!",
    "{Q} Live Reaction | Fans Can't Believe It",
    "Every {Q} Fan Needs to See This",
    "{Q} in 60 Seconds #shorts",
)

_LIVE_TITLES = (
    "LIVE: {Q} Watch-Along & Q&A",
    "{Q} Live Stream | Ball-by-Ball & Chat",
    'LIVE "{Q}" Night - Join Us!',
)

_SENTENCES = (
    "Everything you need to know about {q} this week, in one place.",
    "We break down the biggest {q} stories & what they mean for fans.",
    "Don't forget to like, subscribe & hit the bell for more {q} videos.",
    'In today\'s episode we answer your "{q}" questions from the comments.',
    "Timestamps are in the pinned comment; tell us your favourite {q} moment below!",
    "Our team's honest take on the latest {q} news, with clips, stats & reactions.",
    "If you're new to {q}, start here: we keep it simple & fun.",
    "Filmed on location with the people who know {q} best.",
    "This one's for the fans who've followed {q} from day one.",
    "Support the channel & join the members' chat for behind-the-scenes {q} content.",
)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

CATEGORY_IDS = ("17", "22", "24", "25", "20", "10")


@dataclass(frozen=True, slots=True)
class Text:
    title: str
    description: str
    tags: tuple[str, ...]


def _display(query: str, rng: random.Random) -> str:
    """The query as it appears in a title: as typed or capitalised, never altering its letters."""
    variant = rng.choice((query, query[:1].upper() + query[1:], query.upper()))
    return variant if variant.casefold() == query.casefold() else query


def make_text(query: str, rng: random.Random, *, live: bool, year: int, month: int, day: int) -> Text:
    shown = _display(query, rng)
    template = rng.choice(_LIVE_TITLES if live else _TITLES)
    title = template.format(Q=shown, n=rng.randint(2, 30), month=_MONTHS[month - 1], day=day, year=year)
    sentences = rng.sample(_SENTENCES, k=rng.randint(2, 4))
    body = " ".join(s.format(q=query) for s in sentences)
    hashtag = "#" + "".join(ch for ch in query.title() if ch.isalnum())
    description = f"{body}\n\n{hashtag} #{rng.choice(('highlights', 'news', 'live', 'reaction', 'fans'))}"
    tags: tuple[str, ...] = ()
    if rng.random() < 0.7:
        tags = (query, f"{query} today", f"{query} highlights")[: rng.randint(1, 3)]
    return Text(title=title, description=description, tags=tags)


def search_snippet(description: str, limit: int = 160) -> str:
    """search.list's cut-down description: one line, trimmed at a word with ' ...' appended."""
    flat = " ".join(description.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return f"{cut} ..."


def html_escape(text: str) -> str:
    """The escaping search.list applies to titles, descriptions and channel titles (once)."""
    return (
        text.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )
