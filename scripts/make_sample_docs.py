"""Generate the binary sample documents (PDF, DOCX) under examples/docs/.

The Markdown, text and HTML samples are written by hand; the PDFs and Word files are
built here from the text below, with the hand-rolled writers in tests/docfactory.py,
so the output is byte-for-byte reproducible. Run after editing the text:

    .venv/bin/python scripts/make_sample_docs.py          # (re)write the files
    .venv/bin/python scripts/make_sample_docs.py --check  # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from docfactory import DocxBlock, make_docx, make_pdf  # noqa: E402

DEFAULT_OUT = ROOT / "examples" / "docs"

ASTROPHOTOGRAPHY_PAGES = [
    """Photographing the Night Sky: A Beginner's Primer
Hawthorn House Notebook - sky section

This primer collects what we learned in our first two years of photographing the night \
sky. None of it needs the telescope: everything here is done with an ordinary camera on \
a tripod, and later on a small star tracker. It is printed and pinned inside the shed \
door, which is why it is a PDF.

What you need

Camera. Any camera that can take long exposures in manual mode and save RAW files. We use \
a Canon EOS 250D, an APS-C camera with a crop factor of 1.6. RAW matters: JPEG throws away \
the faint detail that processing later pulls out.

Lens. A wide, fast lens is the single best upgrade. Ours is a 24 mm f/2.8 prime. Zoom kit \
lenses work, but at f/4 or f/5.6 they gather far less light.

Tripod and remote. A sturdy tripod and an intervalometer (a remote shutter release that \
can fire a sequence of exposures) so you never touch the camera during an exposure.

Star tracker. After the first year we added a Sky-Watcher Star Adventurer, a small \
motorised mount that turns the camera at the same rate as the sky. With it, exposures of \
two minutes or more are possible without trailing. Polar alignment takes about ten \
minutes using the built-in polar scope.

Power and dew. Cold drains batteries fast; carry two spares in an inside pocket. A USB \
dew heater strip around the lens is essential from September to April.""",
    """Exposure and focus

The 500 rule. Without a tracker, stars start to trail into short lines when the exposure \
is too long. A practical limit is the 500 rule:

    longest exposure in seconds = 500 / (focal length x crop factor)

For our 24 mm lens on the 1.6 crop camera that is 500 / (24 x 1.6), about 13 seconds. \
With a 50 mm lens it drops to about 6 seconds. The rule is generous for modern \
high-resolution sensors; if you zoom into the image and see short trails, use 80 percent \
of the result.

Settings to start with. Manual mode, aperture wide open (f/2.8), ISO 1600 to 3200, \
exposure from the 500 rule, white balance fixed at 3900 K so every frame matches, image \
stabilisation off, long-exposure noise reduction off (we take dark frames instead, see \
the next page).

Focus. Autofocus does not work on stars. Switch the lens to manual focus, point at the \
brightest star or planet, turn on live view and magnify it 10x on the screen. Turn the \
focus ring slowly until the star is the smallest possible point. A Bahtinov mask, a \
cheap slotted cover placed over the lens, makes this precise: it creates a spike \
pattern that is symmetrical only at perfect focus. Tape the focus ring once it is right; \
a bumped ring has ruined more of our nights than clouds.

Composition. Include something on the ground - a tree, the shed, a hill. A sky full of \
stars with no foreground looks like noise to anyone who was not there.""",
    """Calibration frames and stacking

A single exposure is noisy. Stacking many exposures of the same target averages the \
random noise away: stacking 16 frames halves the noise compared with 4. We aim for at \
least 60 light frames (the actual pictures of the target) per session.

Calibration frames remove the camera's own flaws. Take them in the same session, with the \
same ISO, and do not change focus:

Darks: 20 frames with the lens cap on, at the same exposure time and temperature as the \
lights. They record hot pixels and thermal noise. Take them at the end of the session, \
outside, so the sensor is at the same temperature.

Flats: 20 frames of an evenly lit white surface - we use a white T-shirt stretched over \
the lens and a tablet showing a blank white screen. They record vignetting and dust \
spots. Exposure so that the histogram peak sits in the middle.

Bias: 50 frames at the shortest shutter speed with the cap on. They record the read-out \
noise of the sensor and can be reused for months.

Stacking software. We use Siril, which is free and runs on all our machines; \
DeepSkyStacker is a good alternative on Windows. Load lights, darks, flats and biases, \
let the software register (align) the frames on the stars, and stack with sigma clipping, \
which also removes satellite and aircraft trails.""",
    """Processing and troubleshooting

Processing order in Siril: crop the stacking edges, remove the background gradient \
(light pollution makes one side of the frame brighter), calibrate colour, then stretch \
the histogram to bring out the faint detail. Stretch gently in several small steps; \
one aggressive stretch turns the background blotchy.

Common problems and fixes

Dew on the lens: the image slowly gets softer and stars grow halos. Fit the dew heater \
strip before it starts, not after; it runs at 5 V from a USB power bank for about six \
hours.

Trailed stars with the tracker: usually poor polar alignment. Check it again after \
the first frames, and keep exposures at two minutes or less until it is reliable.

Orange glow in one corner: light pollution or a neighbour's window. Background \
extraction helps; so does shooting targets high in the sky.

Green tint after stacking: colour calibration skipped. Run photometric colour \
calibration in Siril.

Good targets through the year

Winter: the Orion Nebula (M42) and the Pleiades (M45), both bright enough for the 24 mm \
lens without a tracker.
Spring: the Big Dipper over the house, and star trails with a two-hour sequence.
Summer: the core of the Milky Way, low in the south in June and July, best from Crane \
Hill or Elmstead Reservoir around new moon.
Autumn: the Andromeda Galaxy (M31), which needs the tracker and at least an hour of \
total exposure.""",
]

MAINTENANCE_PAGES = [
    """Home Lab Maintenance Checklist
Printed for the inside of the stairs cupboard door. Tick the box on the wall sheet and \
write the date.

Every month

1. NAS disk health. A SMART long test runs automatically on both disks of larder on the \
1st of every month at 01:00. Check the results in the NAS web interface. Any increase in \
reallocated or pending sectors means ordering a replacement disk that week.
2. Backup logs. Read the restic summary emails for the month. Two failed nights in a row \
must already have been investigated; check nothing was missed.
3. Operating system updates. kettle installs security updates automatically every \
Tuesday at 03:00 and reboots if needed. Once a month, log in and apply the remaining \
updates by hand, then check that all services came back.
4. Pi-hole. Update Pi-hole and check the query log for new false positives.
5. UPS. Confirm the automatic self-test on the first Monday of the month passed.

Every quarter

1. Restore test: first Saturday of January, April, July and October (see the backups \
page in the notebook).
2. Dust. Clean the dust filters of the NAS and kettle with a soft brush and a vacuum \
cleaner, with the machines off. The stairs cupboard is dusty and the fans clog quickly.
3. Free space. Check that no volume is more than 80 percent full. Above 80 percent, \
larder emails a warning every day.""",
    """Every year

1. Domain name. The family domain renews on 14 June. Auto-renewal is on, but check that \
the card on file has not expired.
2. VPN keys. Rotate the WireGuard keys of every device in January, and remove keys of \
devices that are gone.
3. Firewall rules. Read through every port forward and firewall exception and delete \
what nobody can explain.
4. Disk age. Replace NAS disks after five years of service even if they look healthy. \
The current pair was installed in February 2022.
5. Password card. Check that the printed restic password card in the fire safe still \
matches the repository password.

When something breaks

Start with the simplest explanation: is it plugged in, is the UPS on battery, is the \
Pi-hole answering (see the network notes for the quick DNS fix)? Write down what \
happened and what fixed it in the notebook on the same day, so that next time the answer \
is one search away.""",
]

PEST_CONTROL: list[DocxBlock] = [
    ("Title", "Pest Control in the Vegetable Garden"),
    "We garden without slug pellets or broad-spectrum insecticides. Most years, a few "
    "simple habits keep the damage small enough to live with, and the birds, frogs and "
    "ground beetles do a surprising share of the work once they are given a home.",
    ("Heading1", "Slugs and snails"),
    "Slugs are the biggest problem in our damp garden, especially for young lettuce, "
    "courgettes and beans. We go out with a torch on wet evenings in April and May and "
    "collect them by hand; a single evening can yield over a hundred.",
    "Beer traps work well: sink a jam jar so its rim sits 2 cm above the soil (so ground "
    "beetles do not fall in) and fill it halfway with cheap beer. Empty and refill every "
    "three days.",
    "For the worst beds we water in slug nematodes (Phasmarhabditis hermaphrodita) in "
    "mid-April, once the soil is above 5 °C. One treatment protects for about six weeks, "
    "so we repeat it at the end of May. Nematodes are harmless to birds, pets and "
    "hedgehogs. We never use metaldehyde pellets.",
    ("Heading1", "Aphids"),
    "Greenfly and blackfly cluster on the tips of broad beans and on the undersides of "
    "kale leaves. Small colonies are squashed by hand or knocked off with a jet of water. "
    "Pinching out the tops of broad beans once the first pods set removes the aphids' "
    "favourite spot. If an infestation gets out of hand, we spray with soft soap solution: "
    "one tablespoon of liquid soap per litre of water, in the evening when bees are not "
    "flying. Ladybird and hoverfly larvae usually arrive within two weeks.",
    ("Heading1", "Cabbage white caterpillars"),
    "Cabbage white butterflies lay eggs on every brassica they can reach. The only reliable "
    "protection is insect netting with a 7 mm mesh or finer, put over hoops as soon as the "
    "plants go in and kept on until October. The netting must not touch the leaves, or the "
    "butterflies lay through it.",
    ("Heading1", "Tomato and potato blight"),
    "Blight arrives in warm, wet weeks from July onwards. Remove any leaf with brown patches "
    "at once, water only at the base, and grow the resistant variety Crimson Crush as "
    "insurance. Blighted plants go in the council green-waste bin, never on the compost.",
    ("Heading1", "Quick reference"),
    [
        ["Pest", "Sign", "Treatment", "When"],
        [
            "Slugs",
            "Ragged holes, slime trails",
            "Hand-picking, beer traps, nematodes",
            "April–June",
        ],
        ["Aphids", "Clusters on shoot tips", "Squash, water jet, soft soap", "May–August"],
        ["Cabbage white", "Leaves eaten to the veins", "7 mm insect netting", "May–October"],
        [
            "Blight",
            "Brown patches, rotting fruit",
            "Remove leaves, Crimson Crush",
            "July–September",
        ],
        ["Carrot fly", "Rusty tunnels in roots", "60 cm high barrier, sow thinly", "May–September"],
    ],
    "Encourage the helpers: the small pond by the shed brought frogs within a year, and the "
    "log pile behind the compost bays shelters ground beetles, which eat slug eggs.",
]

UPS_AND_POWER: list[DocxBlock] = [
    ("Title", "UPS and Power Cuts"),
    "The computers in the stairs cupboard sit behind an uninterruptible power supply (UPS). "
    "Its job is not to keep everything running through a long cut, but to ride out the "
    "short flickers we get a few times a year and, in a longer cut, to shut the NAS down "
    "cleanly before its battery runs out.",
    ("Heading1", "The UPS"),
    "The UPS is a 1500 VA / 900 W line-interactive model. It protects the NAS larder, the "
    "home server kettle, the router, the network switch and the Pi-hole. The printer and "
    "the access points are not on the UPS; they can simply go off.",
    [
        ["Device", "Typical draw", "Outlet"],
        ["NAS larder", "35 W", "Battery 1"],
        ["Home server kettle", "60 W", "Battery 2"],
        ["Router and switch", "30 W", "Battery 3"],
        ["Pi-hole (Raspberry Pi 4)", "5 W", "Battery 4"],
        ["Total", "about 140 W", ""],
    ],
    "At a load of about 140 W the UPS software estimates a runtime of 18 minutes on a full "
    "battery.",
    ("Heading1", "Automatic shutdown"),
    "kettle runs Network UPS Tools (NUT) and talks to the UPS over USB. When the power "
    "fails, NUT waits. If the power is back within five minutes, nothing happens. If the "
    "UPS has been on battery for five minutes, or the battery falls to 40 percent, "
    "whichever comes first, NUT tells larder to shut down, then shuts down kettle itself. "
    "The router and the Pi-hole keep running until the battery is empty, so the internet "
    "keeps working for phones on mobile data hotspots in the meantime.",
    "When the power comes back, the NAS and kettle start automatically: both have "
    "'power on after power loss' enabled in their firmware settings.",
    ("Heading1", "Battery replacement"),
    "UPS batteries wear out even when they are rarely used. We replace the battery every "
    "three years, whether or not the self-test complains. The last replacement was in "
    "March 2023, so the next one is due in March 2026. The replacement is a standard 12 V "
    "9 Ah sealed lead-acid battery; the old one goes to the recycling centre.",
    "The UPS runs a self-test on the first Monday of every month at 10:00. A failed "
    "self-test sends an email from kettle and means replacing the battery early.",
    ("Heading1", "During a long power cut"),
    "1. Do nothing for the first five minutes; the UPS handles short cuts.\n"
    "2. If the cut will be long, shut down the laptops and save your work.\n"
    "3. Do not unplug the UPS or switch it off: the NAS needs the battery to shut down "
    "cleanly.\n"
    "4. Afterwards, check the NUT log on kettle and confirm that last night's backup ran.",
]


def build() -> dict[str, bytes]:
    """Relative path under examples/docs -> file content."""
    return {
        "sky/astrophotography-primer.pdf": make_pdf(
            ASTROPHOTOGRAPHY_PAGES, title="Photographing the Night Sky: A Beginner's Primer"
        ),
        # No /Title on purpose: this one exercises the first-line title fallback.
        "homelab/maintenance-checklist.pdf": make_pdf(MAINTENANCE_PAGES),
        "garden/pest-control.docx": make_docx(
            PEST_CONTROL, title="Pest Control in the Vegetable Garden"
        ),
        # No core title: the title comes from the first Title/Heading paragraph.
        "homelab/ups-and-power.docx": make_docx(UPS_AND_POWER),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument(
        "--check", action="store_true", help="only report files that are missing or stale"
    )
    args = parser.parse_args(argv)
    stale = 0
    for relative, content in build().items():
        target: Path = args.out / relative
        if target.exists() and target.read_bytes() == content:
            continue
        if args.check:
            print(f"stale: {target}")
            stale += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        print(f"wrote {target} ({len(content)} bytes)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
