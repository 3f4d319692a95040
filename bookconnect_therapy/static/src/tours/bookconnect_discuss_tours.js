/** @odoo-module **/

import { registry } from "@web/core/registry";

// These tours rely on data created by the Python tests (tests/test_discuss_call.py).
const tours = registry.category("web_tour.tours");

const noInvitation = [
    {
        content: "The therapy call's channel is open, with its member list",
        trigger: ".o-discuss-ChannelMemberList .o-discuss-ChannelMember:contains('Casey Client')",
    },
    {
        content: "No action to invite people",
        trigger: ".o-mail-Discuss-header:not(:has(button[name='invite-people']))",
    },
    {
        content: "No 'Invite a User' in the member list",
        trigger: ".o-discuss-ChannelMemberList:not(:has(button:contains('Invite a User')))",
    },
];

tours.add("bookconnect_discuss_therapist_no_invite", {
    steps: () => [
        ...noInvitation,
        {
            content: "Open an ordinary group chat",
            trigger: ".o-mail-DiscussSidebarChannel:contains('Tour group chat')",
            run: "click",
        },
        {
            content: "Its member list is shown",
            trigger: ".o-discuss-ChannelMemberList .o-discuss-ChannelMember:contains('Blair Therapist')",
        },
        {
            content: "A group chat still offers to invite people",
            trigger: ".o-mail-Discuss-header button[name='invite-people']",
        },
        {
            content: "and 'Invite a User' in its member list",
            trigger: ".o-discuss-ChannelMemberList button:contains('Invite a User')",
        },
    ],
});

tours.add("bookconnect_discuss_client_no_invite", {
    steps: () => noInvitation,
});
