"""Write the committed crypto test vectors (run by hand; tests only read the JSON files).

    .venv/bin/python tests/vectors/generate.py [--force]

`concord.json` freezes Concord's own formats: fixed UMK, tenant, epoch, DEK and nonces in, exact
KEK, wrapped DEK, envelope, AAD hash, envelope hash, blind index and audit entry hash out. Once committed it must
never change: stored data depends on it, so an existing file is only rewritten with --force after a
deliberate format change (which also means migrating every stored item).
`nist_aes_gcm.json` and `rfc5869_hkdf.json` hold published values transcribed from the GCM
specification (McGrew & Viega, test cases 13-18, AES-256) and RFC 5869 appendix A.1-A.3;
nothing in them is computed here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from concord.store.audit import GENESIS, entry_hash
from concord.store.codec import encode_entity
from concord.store.crypto.envelope import canonical_json, envelope_hash, seal
from concord.store.crypto.keys import LocalKeyProvider, blind_index, kek_info, normalise_role, write_private_file
from concord.store.crypto.signing import MAC_PURPOSE, item_mac, mac_input
from concord.store.ids import canonical_address
from concord.store.model import AuditEntry, Perspective

HERE = Path(__file__).resolve().parent

UMK = bytes(range(0x00, 0x20))
DEK = bytes(range(0x40, 0x60))
WRAP_NONCE = bytes(range(0xA0, 0xAC))
ENVELOPE_NONCE = bytes(range(0xB0, 0xBC))
TENANT = "acme"
EPOCH = 2
DIALOGUE = "nvidia-analysis"
DEK_VERSION = 1
ROLE = "Relational Database Architect"
ROLE_VARIANTS = [
    "  relational   DATABASE\tarchitect ",
    "RELATIONAL DATABASE ARCHITECT",
    "Relational Database Architect",
]

ENTITY = Perspective(
    id="P0102",
    round=1,
    seq=2,
    label="Single-table design keeps refs in one partition",
    content="Résumé: one Query per dialogue — “no joins”, 漢字 and emoji 🎉 survive canonical JSON.",
    status="open",
    contributors=["cupcake", "muffin"],
    created_at="2026-01-01T00:00:00.005Z",
    updated_at="2026-01-01T00:00:00.005Z",
    local_id="CUPCAKE-P0101",
    aliases=["MUFFIN-P0103"],
)

AUDIT_ENTRY = AuditEntry(
    seq=1,
    ts="2026-01-01T00:00:00.010Z",
    principal="tester",
    operation="create_dialogue",
    keys=["dek#1", "meta"],
    key_id=f"dek#{DIALOGUE}#1",
    envelopes_sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    files={"round-01/muffin.prompt.md": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
    previous=GENESIS,
)


def concord_vectors() -> dict[str, Any]:
    """Concord's own vectors, computed through the store's code with fixed inputs."""
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "umk.key"
        write_private_file(key_file, UMK.hex().encode() + b"\n")
        keys = LocalKeyProvider(key_file)
        kek = keys.kek(TENANT, EPOCH)
        wrapped = keys.wrap(DEK, TENANT, EPOCH, DIALOGUE, DEK_VERSION, nonce=WRAP_NONCE)
        secret = asyncio.run(keys.tenant_secret(TENANT, EPOCH, "blind-index"))
        mac_key = asyncio.run(keys.tenant_secret(TENANT, EPOCH, MAC_PURPOSE))
    record = encode_entity(DIALOGUE, ENTITY, TENANT)
    key_id = f"dek#{DIALOGUE}#{DEK_VERSION}"
    envelope = seal(DEK, key_id, record.pk, record.sk, record.secret or {}, nonce=ENVELOPE_NONCE)
    signed_item = {"pk": record.pk, "sk": record.sk, "tenant": TENANT, **record.clear, **envelope.attributes()}
    # Every JSON shape an attribute can take, so a change in how orjson writes one shows up here.
    signed_item["shapes"] = {
        "relevance": 0.85,
        "tiny": 1.5e-7,
        "huge": 1.25e21,
        "whole": 3,
        "flag": True,
        "none": None,
        "text": "Zoë “quoted” \n 漢字 🎉",
        "nested": {"b": [1, {"a": False}]},
    }
    return {
        "inputs": {
            "umk": UMK.hex(),
            "tenant": TENANT,
            "epoch": EPOCH,
            "dialogue_id": DIALOGUE,
            "dek_version": DEK_VERSION,
            "dek": DEK.hex(),
        },
        "kek": {"hkdf_info": kek_info(TENANT, EPOCH).decode(), "kek": kek.hex()},
        "dek_wrap": {
            "aad": f"concord:dek:{DIALOGUE}:{DEK_VERSION}",
            "nonce": WRAP_NONCE.hex(),
            "wrapped": wrapped.ciphertext.hex(),
            "wrapping_key": wrapped.wrapping_key,
        },
        "envelope": {
            "pk": record.pk,
            "sk": record.sk,
            "canonical_address": canonical_address(record.pk, record.sk),
            "clear": record.clear,
            "fields": record.secret,
            "plaintext": canonical_json(record.secret).decode(),
            "key_id": key_id,
            "nonce": ENVELOPE_NONCE.hex(),
            "aad_hash": envelope.aad_hash,
            "content_encrypted": envelope.content_encrypted.hex(),
            "encryption_version": envelope.encryption_version,
            "envelope_hash": envelope_hash({"pk": record.pk, "sk": record.sk, **envelope.attributes()}),
        },
        "meta_address": {
            "pk": f"dialogue#{DIALOGUE}",
            "sk": "meta",
            "canonical_address": canonical_address(f"dialogue#{DIALOGUE}", "meta"),
        },
        "blind_index": {
            "purpose": "blind-index",
            "tenant_secret": secret.hex(),
            "role": ROLE,
            "variants": ROLE_VARIANTS,
            "normalised": normalise_role(ROLE),
            "blind": blind_index(secret, ROLE),
        },
        "audit_entry": {"entry": asdict(AUDIT_ENTRY), "hash": entry_hash(AUDIT_ENTRY)},
        "item_mac": {
            "purpose": MAC_PURPOSE,
            "mac_key": mac_key.hex(),
            "item": {k: (v.hex() if isinstance(v, bytes) else v) for k, v in signed_item.items()},
            "binary": ["content_encrypted", "content_nonce"],
            "input": mac_input(signed_item).hex(),
            "mac": item_mac(mac_key, signed_item),
        },
    }


GCM_KEY = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
GCM_PLAINTEXT = (
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
GCM_AAD = "feedfacedeadbeeffeedfacedeadbeefabaddad2"

NIST_AES_GCM = {
    "source": "The Galois/Counter Mode of Operation (GCM), McGrew & Viega, appendix B, test cases 13-18 (AES-256)",
    "cases": [
        {
            "name": "13",
            "key": "00" * 32,
            "iv": "00" * 12,
            "plaintext": "",
            "aad": "",
            "ciphertext": "",
            "tag": "530f8afbc74536b9a963b4f1c4cb738b",
        },
        {
            "name": "14",
            "key": "00" * 32,
            "iv": "00" * 12,
            "plaintext": "00" * 16,
            "aad": "",
            "ciphertext": "cea7403d4d606b6e074ec5d3baf39d18",
            "tag": "d0d1c8a799996bf0265b98b5d48ab919",
        },
        {
            "name": "15",
            "key": GCM_KEY,
            "iv": "cafebabefacedbaddecaf888",
            "plaintext": GCM_PLAINTEXT,
            "aad": "",
            "ciphertext": "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
            "tag": "b094dac5d93471bdec1a502270e3cc6c",
        },
        {
            "name": "16",
            "key": GCM_KEY,
            "iv": "cafebabefacedbaddecaf888",
            "plaintext": GCM_PLAINTEXT[:120],
            "aad": GCM_AAD,
            "ciphertext": "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "tag": "76fc6ece0f4e1768cddf8853bb2d551b",
        },
        {
            "name": "17",
            "key": GCM_KEY,
            "iv": "cafebabefacedbad",
            "plaintext": GCM_PLAINTEXT[:120],
            "aad": GCM_AAD,
            "ciphertext": "c3762df1ca787d32ae47c13bf19844cbaf1ae14d0b976afac52ff7d79bba9de0"
            "feb582d33934a4f0954cc2363bc73f7862ac430e64abe499f47c9b1f",
            "tag": "3a337dbf46a792c45e454913fe2ea8f2",
        },
        {
            "name": "18",
            "key": GCM_KEY,
            "iv": "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728"
            "c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
            "plaintext": GCM_PLAINTEXT[:120],
            "aad": GCM_AAD,
            "ciphertext": "5a8def2f0c9e53f1f75d7853659e2a20eeb2b22aafde6419a058ab4f6f746bf4"
            "0fc0c3b780f244452da3ebf1c5d82cdea2418997200ef82e44ae7e3f",
            "tag": "a44a8266ee1c8eb0c8b5d4cf5ae9f19a",
        },
    ],
}

RFC5869_HKDF = {
    "source": "RFC 5869 appendix A.1-A.3 (HKDF with SHA-256)",
    "cases": [
        {
            "name": "A.1",
            "ikm": "0b" * 22,
            "salt": "000102030405060708090a0b0c",
            "info": "f0f1f2f3f4f5f6f7f8f9",
            "length": 42,
            "prk": "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            "okm": "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        },
        {
            "name": "A.2",
            "ikm": bytes(range(0x00, 0x50)).hex(),
            "salt": bytes(range(0x60, 0xB0)).hex(),
            "info": bytes(range(0xB0, 0x100)).hex(),
            "length": 82,
            "prk": "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
            "okm": "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87",
        },
        {
            "name": "A.3",
            "ikm": "0b" * 22,
            "salt": "",
            "info": "",
            "length": 42,
            "prk": "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            "okm": "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        },
    ],
}


def main() -> None:
    """Write every vector file that does not exist yet (all of them with --force)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite existing files (a format change)")
    args = parser.parse_args()
    for name, content in (
        ("concord.json", concord_vectors()),
        ("nist_aes_gcm.json", NIST_AES_GCM),
        ("rfc5869_hkdf.json", RFC5869_HKDF),
    ):
        path = HERE / name
        if path.exists() and not args.force:
            print(f"kept {path.name} (exists; --force to overwrite)")
            continue
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path.name}")


if __name__ == "__main__":
    main()
