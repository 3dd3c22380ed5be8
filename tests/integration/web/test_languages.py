"""The portals in English, German, French, Spanish and Italian: how the language is chosen,
what a person reads in each, localised dates and numbers, and complete catalogues."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from starlette.testclient import TestClient

from databunker.services.context import Context
from databunker.web import i18n
from support.vaults import ROOT_TOKEN, FixedDigits, client_for, create_user, issue_user_token

CODE = "123456"
LOCALE = Path(i18n.__file__).parent / "locale"
# What a person reads on the sign-in, profile and consents pages, in each language.
SIGN_IN = {
    "en": "Sign in to see your data",
    "de": "Melden Sie sich an, um Ihre Daten zu sehen",
    "fr": "Connectez-vous pour voir vos données",
    "es": "Inicia sesión para ver tus datos",
    "it": "Accedi per vedere i tuoi dati",
}
PROFILE = {
    "en": ("Your profile", "Email address", "Download all my data"),
    "de": ("Ihr Profil", "E-Mail-Adresse", "Alle meine Daten herunterladen"),
    "fr": ("Votre profil", "Adresse e-mail", "Télécharger toutes mes données"),
    "es": ("Tu perfil", "Correo electrónico", "Descargar todos mis datos"),
    "it": ("Il tuo profilo", "Indirizzo e-mail", "Scarica tutti i miei dati"),
}
CONSENTS = {
    "en": ("Your consents", "Send email on login", "Legal basis: Your consent"),
    "de": (
        "Ihre Einwilligungen",
        "E-Mail bei der Anmeldung senden",
        "Rechtsgrundlage: Ihre Einwilligung",
    ),
    "fr": (
        "Vos consentements",
        "Envoyer un e-mail à la connexion",
        "Base légale : Votre consentement",
    ),
    "es": (
        "Tus consentimientos",
        "Enviar un correo al iniciar sesión",
        "Base jurídica: Tu consentimiento",
    ),
    "it": (
        "I tuoi consensi",
        "Inviare un\u2019e-mail all\u2019accesso",
        "Base giuridica: Il tuo consenso",
    ),
}


def as_text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.fixture
def vault(make_vault) -> Context:  # type: ignore[no-untyped-def]
    return make_vault(random=FixedDigits(CODE), generic={"login_captcha": False})  # type: ignore[no-any-return]


@pytest.fixture
def ann(vault: Context) -> str:
    with client_for(vault) as root:
        return create_user(root, {"email": "ann@example.com"})


@pytest.fixture
def browser(vault: Context) -> Iterator[TestClient]:
    with client_for(vault, None) as client:
        client.follow_redirects = False
        yield client


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_sign_in_profile_and_consents_in_each_language(
    browser: TestClient, vault: Context, ann: str, lang: str
) -> None:
    start = browser.get("/", params={"lang": lang})
    assert f'<html lang="{lang}">' in start.text
    assert SIGN_IN[lang] in as_text(start.text)
    browser.cookies.set("databunker_session", issue_user_token(vault, ann))
    profile = as_text(browser.get("/profile").text)  # the cookie keeps the language
    for text in PROFILE[lang]:
        assert text in profile
    consents = as_text(browser.get("/consents").text)
    for text in CONSENTS[lang]:
        assert text in consents


def test_accept_language_then_cookie_then_query(browser: TestClient) -> None:
    german = browser.get("/", headers={"Accept-Language": "nl;q=0.9, de-AT;q=0.8, en;q=0.1"})
    assert SIGN_IN["de"] in as_text(german.text)
    assert SIGN_IN["en"] in as_text(browser.get("/", headers={"Accept-Language": "pt"}).text)
    picked = browser.get("/?lang=it", headers={"Accept-Language": "de"})
    assert "databunker_lang=it" in picked.headers["set-cookie"]
    assert SIGN_IN["it"] in as_text(browser.get("/", headers={"Accept-Language": "de"}).text)
    assert SIGN_IN["fr"] in as_text(browser.get("/?lang=fr").text)
    assert SIGN_IN["fr"] in as_text(browser.get("/?lang=xx").text)  # unknown: the cookie's


def test_the_switcher_names_each_language_in_itself(browser: TestClient) -> None:
    page = browser.get("/?lang=es").text
    switcher = re.search(r'<nav class="languages" aria-label="Idioma">(.*?)</nav>', page, re.S)
    assert switcher is not None, page
    links = re.findall(r'<a href="\?lang=(\w+)" lang="\w+"[^>]*>([^<]+)</a>', switcher.group(1))
    assert links == [
        ("en", "English"),
        ("de", "Deutsch"),
        ("fr", "Français"),
        ("es", "Español"),
        ("it", "Italiano"),
    ]
    assert 'aria-current="true">Español' in switcher.group(1)


def test_dates_numbers_and_messages_are_localised(
    browser: TestClient, vault: Context, ann: str
) -> None:
    browser.cookies.set("databunker_session", issue_user_token(vault, ann))
    history = as_text(browser.get("/audit?lang=de").text)
    assert "Freitag, 15. Januar 2027" in history  # the day heading
    assert "15.01.2027, 08:00:00 UTC" in history
    assert "Unser Dienst hat Ihr Profil angelegt." in history
    french = as_text(browser.get("/audit?lang=fr").text)
    assert "vendredi 15 janvier 2027" in french
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/profile?lang=es").text)
    assert csrf is not None
    saved = browser.post("/profile/save", data={"csrf": csrf.group(1)})
    assert "Tu" in as_text(browser.get(saved.headers["location"]).text)
    assert "No se ha cambiado nada." in as_text(browser.get(saved.headers["location"]).text)
    assert i18n.Speaker("de").number(12345) == "12.345"
    assert i18n.Speaker("fr").number(12345) == "12\u202f345"


def test_the_admin_portal_speaks_the_language_too(vault: Context, browser: TestClient) -> None:
    start = browser.get("/admin?lang=de")
    csrf = re.search(r'name="csrf" value="([^"]+)"', start.text)
    assert csrf is not None
    browser.post("/admin/signin", data={"csrf": csrf.group(1), "token": ROOT_TOKEN})
    dashboard = as_text(browser.get("/admin").text)
    assert "Übersicht" in dashboard
    assert "0 offene Anfragen" in dashboard
    assert "1 Rechtsgrundlage" not in dashboard  # two are built in
    assert "2 Rechtsgrundlagen" in dashboard
    legal = as_text(browser.get("/admin/legal").text)
    assert "Neue Rechtsgrundlage" in legal
    assert "Verarbeitungstätigkeiten" in legal


def sign_in_as_dpo(browser: TestClient, lang: str) -> None:
    start = browser.get(f"/admin?lang={lang}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', start.text)
    assert csrf is not None
    signed = browser.post("/admin/signin", data={"csrf": csrf.group(1), "token": ROOT_TOKEN})
    assert signed.status_code == 303, signed.text


# How the admin's audit lists name "create user record" and "get user record by token".
ADMIN_EVENTS = {
    "en": ("Profile created", "Profile read"),
    "de": ("Profil angelegt", "Profil gelesen"),
    "fr": ("Profil créé", "Profil lu"),
    "es": ("Perfil creado", "Perfil leído"),
    "it": ("Profilo creato", "Profilo letto"),
}


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_the_admin_audit_names_events_in_words(
    browser: TestClient, vault: Context, ann: str, lang: str
) -> None:
    with client_for(vault) as root:
        root.get(f"/v1/user/token/{ann}")
    sign_in_as_dpo(browser, lang)
    created, read = ADMIN_EVENTS[lang]
    listing = browser.get("/admin/audit").text
    shown = as_text(listing)
    assert created in shown
    assert read in shown
    assert "create user record" not in shown
    assert "get user record by token" not in shown
    person = as_text(browser.get(f"/admin/user/{ann}").text)
    assert created in person
    assert "create user record" not in person
    reads = browser.get("/admin/audit", params={"action": "get user record"}).text
    atoken = re.search(r'href="/admin/audit/([0-9a-f-]{36})"', reads)
    assert atoken is not None
    event = browser.get(f"/admin/audit/{atoken.group(1)}").text
    assert f"<h1>{read}</h1>" in event
    # The title as recorded stays on the event's page, for the "action contains" filter.
    assert "get user record by token" in as_text(event)


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_the_admin_audit_filters_by_the_action_as_it_is_named(
    browser: TestClient, vault: Context, ann: str, lang: str
) -> None:
    with client_for(vault) as root:
        root.get(f"/v1/user/token/{ann}")
        root.get(f"/v1/user/token/{ann}")
    sign_in_as_dpo(browser, lang)
    created, read = ADMIN_EVENTS[lang]

    def actions(words: str) -> list[str]:
        page = browser.get("/admin/audit", params={"action": words}).text
        cells = re.findall(r'<td data-label="[^"]+">([^<]*)', page.split("<tbody>", 1)[-1])
        return [html.unescape(cell).strip() for cell in cells if cell.strip() in (created, read)]

    assert actions(read) == [read, read]  # the words a DPO reads in the list
    assert actions(read.split()[-1].upper()) == [read, read]  # any part, any case
    assert actions("Profile read") == [read, read]  # English words, in any language
    assert actions("get user record") == [read, read]  # the title as recorded
    assert actions(created) == [created]
    assert actions("no such action") == []


def options(page: str, name: str) -> list[tuple[str, str]]:
    """A select's options as (value sent, label shown)."""
    select = re.search(rf'<select id="{name}" name="{name}">(.*?)</select>', page, re.S)
    assert select is not None, page
    return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select.group(1))


def test_the_legal_basis_form_offers_labels_and_sends_values(
    browser: TestClient, vault: Context
) -> None:
    sign_in_as_dpo(browser, "de")
    form = browser.get("/admin/legal/basis").text
    types = options(form, "basistype")
    assert ("consent", "Einwilligung") in types
    assert ("legal-requirement", "Gesetzliche Vorschrift") in types
    assert ("legitimate-interest", "Berechtigtes Interesse") in types
    assert ("cookie-popup", "Cookie-Banner") in options(form, "module")
    assert options(form, "status") == [("active", "Aktiv"), ("disabled", "Deaktiviert")]
    for name in ("basistype", "module", "status"):
        assert all(label != value for value, label in options(form, name)), name
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    saved = browser.post(
        "/admin/legal/save-basis",
        data={
            "csrf": csrf.group(1),
            "original": "",
            "brief": "tax-records",
            "basistype": "legal-requirement",
            "module": "checkout-page",
            "status": "disabled",
        },
    )
    assert saved.status_code == 303, saved.text
    with client_for(vault) as root:
        rows = {row["brief"]: row for row in root.get("/v1/lbasis").json()["rows"]}
    assert rows["tax-records"]["basistype"] == "legal-requirement"
    assert rows["tax-records"]["module"] == "checkout-page"
    assert rows["tax-records"]["status"] == "disabled"
    listed = as_text(browser.get("/admin/legal").text)
    assert "tax-records Gesetzliche Vorschrift Bestellseite Deaktiviert" in listed
    edit = browser.get("/admin/legal/basis/tax-records").text
    assert '<option value="legal-requirement" selected>Gesetzliche Vorschrift</option>' in edit


@pytest.mark.parametrize("lang", [code for code in i18n.LANGUAGES if code != i18n.DEFAULT])
def test_every_message_is_translated_with_the_same_placeholders(lang: str) -> None:
    with (LOCALE / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    with (LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalogue = read_po(handle, locale=lang)
    placeholder = re.compile(r"%\(\w+\)s")
    for message in template:
        if not message.id:
            continue
        found = catalogue.get(message.id)
        assert found is not None, (lang, message.id)
        singular = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = found.string if isinstance(found.string, tuple) else (found.string,)
        for text in strings:
            assert text, (lang, message.id)
            assert sorted(placeholder.findall(text)) == sorted(placeholder.findall(singular)), (
                lang,
                message.id,
            )


# --- legal-basis texts per language (an extension of the v1 API) ---------------------------


def test_legal_basis_texts_per_language(browser: TestClient, vault: Context, ann: str) -> None:
    german = {"shortdesc": "Newsletter auf Deutsch", "fulldesc": "Einmal im Monat."}
    with client_for(vault) as root:
        saved = root.post(
            "/v1/lbasis/news",
            json={
                "shortdesc": "Newsletter",
                "fulldesc": "Once a month.",
                "usercontrol": True,
                "translations": {"de": german, "fr": {"shortdesc": "Lettre d'information"}},
            },
        )
        assert saved.status_code == 200, saved.text
        listed = {row["brief"]: row for row in root.get("/v1/lbasis").json()["rows"]}
        # Saving without translations keeps them; old clients never see the key otherwise.
        root.post("/v1/lbasis/news", json={"fulldesc": "Once a month, no more."})
        kept = {row["brief"]: row for row in root.get("/v1/lbasis").json()["rows"]}
    assert listed["news"]["translations"]["de"] == german
    assert kept["news"]["translations"]["fr"] == {"shortdesc": "Lettre d'information"}
    assert "translations" not in kept["core-send-email-on-login"]
    browser.cookies.set("databunker_session", issue_user_token(vault, ann))
    shown = as_text(browser.get("/consents?lang=de").text)
    assert "Newsletter auf Deutsch" in shown
    assert "Einmal im Monat." in shown
    french = as_text(browser.get("/consents?lang=fr").text)
    assert "Lettre d'information" in french
    assert "Once a month, no more." in french  # not given in French: the original text
    assert "Newsletter" in as_text(browser.get("/consents?lang=it").text)


@pytest.mark.parametrize(
    "translations",
    [
        "de",
        {"german": {"shortdesc": "x"}},
        {"de": "x"},
        {"de": {"title": "x"}},
        {"de": {"shortdesc": 3}},
        {"de": {"shortdesc": "bell\u0007"}},
    ],
)
def test_bad_translations_are_refused(vault: Context, translations: object) -> None:
    with client_for(vault) as root:
        answer = root.post("/v1/lbasis/news", json={"translations": translations})
        assert answer.status_code == 400, answer.text
        assert answer.json()["status"] == "error"
        assert all(row["brief"] != "news" for row in root.get("/v1/lbasis").json()["rows"])


def test_error_pages_speak_the_language(browser: TestClient, vault: Context, ann: str) -> None:
    browser.cookies.set("databunker_session", issue_user_token(vault, ann))
    refused = browser.get("/audit?offset=abc&lang=it")
    assert refused.status_code == 400
    shown = as_text(refused.text)
    assert "Qualcosa è andato storto" in shown
    assert "posizione di pagina non valida" in shown


# --- the domain's error messages -----------------------------------------------------------


@pytest.fixture
def editing_vault(make_vault) -> Context:  # type: ignore[no-untyped-def]
    return make_vault(  # type: ignore[no-any-return]
        random=FixedDigits(CODE),
        generic={"login_captcha": False},
        selfservice={"user_record_change": True},
    )


def error_of(response) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text, re.S)
    assert found is not None, response.text
    return as_text(found.group(1))


# What a person reads when the email they enter is no email, and when it is someone else's.
PROFILE_ERRORS = {
    "en": ("invalid email", "duplicate index: email"),
    "de": (
        "diese E-Mail-Adresse ist ungültig",
        "diese E-Mail-Adresse wird bereits von einer anderen Person verwendet",
    ),
    "fr": (
        "cette adresse e-mail n\u2019est pas valide",
        "cette adresse e-mail est déjà utilisée par une autre personne",
    ),
    "es": (
        "este correo electrónico no es válido",
        "otra persona ya usa este correo electrónico",
    ),
    "it": (
        "questo indirizzo e-mail non è valido",
        "questo indirizzo e-mail è già usato da un\u2019altra persona",
    ),
}


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_profile_errors_speak_the_language(editing_vault: Context, lang: str) -> None:
    with client_for(editing_vault) as root:
        ann = create_user(root, {"email": "ann@example.com"})
        create_user(root, {"email": "bob@example.com"})
    with client_for(editing_vault, None) as browser:
        browser.follow_redirects = False
        browser.cookies.set("databunker_session", issue_user_token(editing_vault, ann))
        invalid, taken = PROFILE_ERRORS[lang]
        for email, told, status in (("no email", invalid, 400), ("bob@example.com", taken, 409)):
            page = browser.get("/profile", params={"lang": lang}).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf is not None
            saved = browser.post(
                "/profile/save", data={"csrf": csrf.group(1), 'field:["email"]': email}
            )
            assert saved.status_code == status, saved.text
            assert error_of(saved) == told


def test_admin_errors_speak_the_language(browser: TestClient) -> None:
    start = browser.get("/admin?lang=de").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', start)
    assert csrf is not None
    wrong = browser.post("/admin/signin", data={"csrf": csrf.group(1), "token": "wrong"})
    assert wrong.status_code == 403
    assert error_of(wrong) == "Dieses Token ist nicht gültig."
    sign_in_as_dpo(browser, "de")

    def save_basis(**fields: str) -> str:
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/admin/legal/basis").text)
        assert csrf is not None
        answer = browser.post(
            "/admin/legal/save-basis", data={"csrf": csrf.group(1), "original": "", **fields}
        )
        assert 400 <= answer.status_code < 500, answer.text
        return error_of(answer)

    assert save_basis(brief="core-send-email-on-login") == (
        "es gibt bereits eine Rechtsgrundlage mit diesem Kurznamen"
    )
    assert save_basis(brief="news", shortdesc="bell\u0007") == "unzulässiges Zeichen in shortdesc"
    assert save_basis(brief="News!").startswith("der Kurzname muss mit einem Kleinbuchstaben")
    refused = browser.get("/admin/audit", params={"person": "no-such-person"})
    assert error_of(refused) == "ungültige Kennung (eine UUID wird erwartet)"
    lookup = browser.get("/admin/users").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', lookup)
    assert csrf is not None
    looked_up = browser.post(
        "/admin/users/lookup", data={"csrf": csrf.group(1), "mode": "email", "value": "nobody"}
    )
    assert looked_up.status_code == 404
    assert error_of(looked_up) == "Es wurde keine Person gefunden."
    looked_up = browser.post(
        "/admin/users/lookup", data={"csrf": csrf.group(1), "mode": "token", "value": "nobody"}
    )
    assert looked_up.status_code == 400
    assert error_of(looked_up) == "ungültige Kennung (eine UUID wird erwartet)"
