/** @odoo-module **/

import { threadActionsRegistry } from "@mail/core/common/thread_actions";
import { patch } from "@web/core/utils/patch";

// A therapy session's call admits its therapist and its client only (the server refuses
// anyone else): offer no invitation there. The flag comes with the channel's data.
patch(threadActionsRegistry.get("invite-people"), {
    condition(component) {
        return !component.thread?.bookconnect_invitations_closed && super.condition(component);
    },
});
