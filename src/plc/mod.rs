//! The line side of a scenario: what makes a part (`[trigger]`) and the Modbus TCP link to
//! a PLC (`[plc]`) that triggers capture and takes each verdict with a handshake.

mod link;
mod map;
mod trigger;

pub use link::{PlcCounters, PlcError, PlcLink, PlcResult, PlcStats};
pub use map::{
    part_id, plc_map, Codes, CodesSection, PlcMap, PlcSection, ResultBlock, MAX_PART_ID_WORDS,
    RESULT_WORDS,
};
pub use trigger::{trigger_plan, FailSafe, Trigger, TriggerMode, TriggerPlan, TriggerSection};
