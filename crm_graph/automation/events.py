"""The event types of automation flows and enrolments (docs/events.md)."""

from crm_graph.core.events import register_event_type

for _verb, _words in (("created", "was created"), ("updated", "was changed (its working definition)"),
                      ("activated", "was activated (`data.versionNumber`: the version it runs)"),
                      ("paused", "was paused"), ("archived", "was archived (its running enrolments ended)")):
    register_event_type(f"automation_flow.{_verb}", f"An automation flow {_words}.")
register_event_type("automation.enrolled", "A customer was enrolled in an automation flow (`data.flowId`, `data.trigger`).")
register_event_type("automation.converted", "An enrolled customer reached the flow's goal (`data.flowId`, `data.step`).")
register_event_type("automation.failed", "A step of an enrolment failed every attempt; it waits in the dead letter (`data.error`).")
