"""target-jiandaoyun: a Singer target that writes records into Jiandaoyun (简道云) forms."""
