"""Two FHIR client libraries nobody here wrote, used as an integrator would (issue 25, item 8):
fhirpy 2.3.1 and fhirclient 4.4.0 (SMART on FHIR's Python client), against a running ehrshare.

    python fhir_clients.py BASE_URL TOKEN PATIENT_ID DOCUMENT_SYSTEM|NUMBER

Each client: reads the CapabilityStatement, finds the patient by identity document, reads the
Patient, creates Observations, searches the patient's Observations by code and by date, and
pages through 120 of them. Nothing is adapted to ehrshare: the calls are the libraries' own.
Exits 0 when every step gave what it must, and says which step failed otherwise.
"""

import sys

import fhirpy
from fhirclient import client as smart_client
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient

LOINC = "http://loinc.org"
GLUCOSE = "2345-7"
PAGED = "2339-0"  # the 120 paged through
PAGED_TOTAL = 120


def observation(patient, code, day, value):
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": day,
        "valueQuantity": {
            "value": value,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    }


def check(what, ok, detail=""):
    if not ok:
        print(f"FAILED: {what} {detail}")
        sys.exit(1)
    print(f"ok: {what}")


def with_fhirpy(base, token, patient, document):
    c = fhirpy.SyncFHIRClient(base, authorization=f"Bearer {token}")
    metadata = c.execute("metadata", method="get")
    check("fhirpy: metadata", metadata["resourceType"] == "CapabilityStatement")
    found = c.resources("Patient").search(identifier=document).fetch()
    check("fhirpy: Patient by identifier", [p.id for p in found] == [patient], found)
    p = c.reference("Patient", patient).to_resource()
    check("fhirpy: read Patient", p.id == patient)
    created = c.resource("Observation", **observation(patient, GLUCOSE, "2026-10-02", 5.4))
    created.save()
    check("fhirpy: create", bool(created.id))
    again = c.reference("Observation", created.id).to_resource()
    check("fhirpy: read what it created", again["valueQuantity"]["value"] == 5.4)
    on_day = (
        c.resources("Observation")
        .search(patient=patient, code=f"{LOINC}|{GLUCOSE}", date="2026-10-02")
        .fetch_all()
    )
    check("fhirpy: Observations by code and date", [o.id for o in on_day] == [created.id])
    later = (
        c.resources("Observation")
        .search(patient=patient, code=f"{LOINC}|{GLUCOSE}", date__gt="2026-10-02")
        .fetch_all()
    )
    check("fhirpy: date with a prefix", later == [], later)
    for i in range(PAGED_TOTAL // 2):
        c.resource(
            "Observation", **observation(patient, PAGED, f"2026-09-{1 + i % 28:02d}", float(i))
        ).save()


def with_fhirclient(base, token, patient, document):
    smart = smart_client.FHIRClient(settings={"app_id": "ehrshare-test", "api_base": base})
    # The CapabilityStatement is parsed by the library's own models (strictly: an element it
    # does not know is an error), and says where OAuth is.
    statement = smart.server.capabilityStatement
    check("fhirclient: metadata", isinstance(statement, CapabilityStatement))
    check("fhirclient: OAuth found in metadata", smart.server.auth is not None)
    smart.server.auth.access_token = token
    found = Patient.where(struct={"identifier": document}).perform_resources(smart.server)
    check("fhirclient: Patient by identifier", [p.id for p in found] == [patient])
    p = Patient.read(patient, smart.server)
    check("fhirclient: read Patient", p.id == patient and p.birthDate is not None)
    o = Observation(observation(patient, GLUCOSE, "2026-10-03", 6.1))
    answer = o.create(smart.server)
    check("fhirclient: create", answer is not None and answer.get("id"))
    on_day = Observation.where(
        struct={"patient": patient, "code": f"{LOINC}|{GLUCOSE}", "date": "2026-10-03"}
    ).perform_resources(smart.server)
    check("fhirclient: Observations by code and date", [x.id for x in on_day] == [answer["id"]])
    for i in range(PAGED_TOTAL // 2):
        Observation(
            observation(patient, PAGED, f"2026-08-{1 + i % 28:02d}", float(i))
        ).create(smart.server)
    pages = Observation.where(
        struct={"patient": patient, "code": f"{LOINC}|{PAGED}", "_count": "25"}
    ).perform_resources_iter(smart.server)
    ids = [x.id for x in pages]
    check("fhirclient: paged through 120", len(ids) == PAGED_TOTAL and len(set(ids)) == PAGED_TOTAL, len(ids))


def paged_with_fhirpy(base, token, patient):
    c = fhirpy.SyncFHIRClient(base, authorization=f"Bearer {token}")
    every = (
        c.resources("Observation")
        .search(patient=patient, code=f"{LOINC}|{PAGED}")
        .limit(50)
        .fetch_all()
    )
    ids = [o.id for o in every]
    check("fhirpy: paged through 120", len(ids) == PAGED_TOTAL and len(set(ids)) == PAGED_TOTAL, len(ids))


def main():
    base, token, patient, document = sys.argv[1:5]
    with_fhirpy(base, token, patient, document)
    with_fhirclient(base, token, patient, document)
    paged_with_fhirpy(base, token, patient)


if __name__ == "__main__":
    main()
