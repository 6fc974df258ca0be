"""The e-mailed codes (support identity check, new sign-in address): made, kept, shown."""

from __future__ import annotations

from django.utils.crypto import salted_hmac

from keyfob.core import mailedcodes


def test_a_new_code_is_random_decimal_digits_with_its_own_salt() -> None:
    made = [mailedcodes.new_code(8) for _ in range(50)]
    assert all(len(code) == 8 and code.isascii() and code.isdigit() for code, _salt in made)
    assert len({code for code, _salt in made}) > 45  # 10**8 codes: repeats are rare
    assert len({salt for _code, salt in made}) == 50
    assert all(len(salt) == 32 for _code, salt in made)


def test_the_digest_is_keyed_and_kept_apart_by_purpose_and_salt() -> None:
    digest = mailedcodes.digest("keyfob.support.email-check", "s1", "12345678")
    # The same formula as before this helper existed: codes already sent still check.
    expected = salted_hmac("keyfob.support.email-check:s1", "12345678", algorithm="sha256")
    assert digest == expected.hexdigest()
    assert digest == mailedcodes.digest("keyfob.support.email-check", "s1", "12345678")
    others = {
        mailedcodes.digest("keyfob.accounts.email-change", "s1", "12345678"),
        mailedcodes.digest("keyfob.support.email-check", "s2", "12345678"),
        mailedcodes.digest("keyfob.support.email-check", "s1", "12345679"),
    }
    assert digest not in others and len(others) == 3


def test_a_code_reads_in_groups_of_four() -> None:
    assert mailedcodes.spaced("12345678") == "1234 5678"
    assert mailedcodes.spaced("") == ""


def test_notices_queued_before_the_one_life_cycle_still_unseal() -> None:
    """The seal contexts are those each use had before (a notice waiting in the outbox
    across the upgrade still shows its code); support's older notices name the check."""
    from keyfob.accounts import flows as accounts
    from keyfob.core import keyring
    from keyfob.support import flows as support

    def sealed(context: str) -> str:
        return keyring.encrypt(b"12345678", context=context)

    nonce = "ab" * 16
    email = {"nonce": nonce, "sealed": sealed(f"email-confirm:{nonce}")}
    reset = {"nonce": nonce, "sealed": sealed(f"password-reset:{nonce}")}
    assert accounts.unseal_email_code(email) == accounts.unseal_reset_code(reset) == "12345678"
    assert support.unseal_code({"check": 7, "sealed": sealed("support-code:7")}) == "12345678"
    newer = {"check": 7, "nonce": nonce, "sealed": sealed(f"support-code:{nonce}")}
    assert support.unseal_code(newer) == "12345678"
